/**
 * Preset deflate dictionary v1 (`body_enc` 1): representative customer-service chat text, English and
 * Chinese, used by workers/compression.ts.
 *
 * FROZEN. Rows in Cassandra were compressed against these exact bytes; changing one character makes
 * them unreadable. A better dictionary is a new file (v2.ts) and a new `body_enc`, never an edit here
 * (test/unit/compression.test.ts checks the SHA-256 and decodes committed v1 rows).
 *
 * Layout follows zlib's advice for deflateSetDictionary: the strings most likely to occur are put
 * towards the end, where back-references are shortest and cheapest. So the text runs from rarer
 * vocabulary and sentences at the top to greetings, order words and particles at the bottom. Its
 * UTF-8 form stays under the 32 KiB deflate window.
 */
export const DICTIONARY_V1 = `淘宝 天猫 京东 拼多多 抖音 支付宝 微信支付 花呗分期 信用卡 储蓄卡 银行卡 余额 顺丰 圆通 中通 申通 韵达 \
极兔 邮政 EMS 京东快递 菜鸟驿站 丰巢快递柜 北京 上海 广州 深圳 杭州 成都 省 市 区 街道 小区 号楼 单元 \
¥ 元 块钱 件 个 双 套 月 日 号 周一 周末 上午 下午 晚上 点 分钟 order confirmation, \
warranty claim, serial number, proof of purchase, manufacturer defect, firmware update, \
bluetooth pairing, charging cable, power adapter, screen protector, headphones, earbuds, laptop, tablet, \
smart watch, phone case, memory card, 128GB 256GB 512GB, cotton, polyester, wool, leather, linen, silk, \
dress, shirt, jacket, coat, jeans, trousers, skirt, sweater, hoodie, T-shirt, socks, sneakers, boots, \
sandals, backpack, handbag, wallet, belt, scarf, gloves, black, white, navy, grey, beige, brown, pink, \
green, red, blue, XS, S, M, L, XL, XXL, size chart, measurements, length, width, waist, chest, \
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday, this weekend, next week, tomorrow, \
USPS, UPS, FedEx, DHL, Royal Mail, Canada Post, customs, import duties, taxes, PayPal, Apple Pay, \
Google Pay, credit card, debit card, bank transfer, store credit, gift card, voucher, promo code, \
Hi, I bought a coffee machine from you last month and it is leaking water.
The laptop does not turn on anymore, the light just blinks.
My headphones only work on one side.
The screen has a dead pixel in the corner.
The watch strap broke on the first day.
The instructions are missing from the box.
One of the buttons is missing on the shirt.
The stitching on the bag is coming apart.
The shoes smell really strong of glue.
The sofa was delivered with a scratch on the leg.
I ordered two but the invoice only shows one.
I think I typed my address wrong, the postcode should be different.
Can I pick up my order from the store instead?
Do you have a physical store near me?
Is this item suitable for children?
Is the product waterproof?
Does it come with a charger?
What is the difference between these two models?
Can you recommend something similar in a cheaper price range?
When is your next sale?
Do you offer student discounts?
Can I use two coupons on one order?
I was told I would get a call back but nobody called.
I have sent three emails and got no answer.
This is unacceptable, I want a full refund.
I will leave a bad review if this is not solved.
The delivery driver was rude.
The parcel was left in the rain and everything is wet.
My neighbour received my package by mistake.
Can you deliver after 6pm?
Can the courier leave it with the concierge?
We have reissued your order and it will be shipped today.
We have cancelled your order and refunded the full amount.
Your order is being prepared and will be dispatched within 1-2 business days.
Your order has been delivered according to the courier. Could you check with your neighbours or building reception?
We have opened an investigation with the carrier, which can take up to 5 business days.
I have requested a callback from our technical support team.
Please try restarting the device and updating it to the latest version.
Please keep the original box in case you need to return it.
As a gesture of goodwill, we have refunded the shipping cost.
The refund was issued on our side; please check with your bank as it can take a few days to appear.
I can see that the return has been received at our warehouse.
I have sent you a new link to reset your password.
I am afraid we are not able to offer an additional discount.
This item is eligible for free returns.
Please select the item and the reason for return in your account under My Orders.
Thank you for letting us know, I have passed your feedback on to the team.
I hope this helps!
I'm sorry to hear that.
I'm happy to help.
I understand.
I'll check that for you now.
Please let me know if you have any other questions.
Thank you for waiting.
Thank you for your understanding.
Thank you for shopping with us.
The parcel is held at customs and may need an import duty payment before it can be released.
I would like to speak to a manager about this.
The product stopped working after a week and I want a replacement under warranty.
The seller sent me a used item, the seal was already broken.
Can you price match? I saw the same item cheaper on another website.
Do you offer gift wrapping? It is a birthday present.
I subscribed by mistake, please cancel my subscription and refund the last charge.
I forgot my password and the reset link does not arrive.
Please delete my account and my personal data.
The payment went through but the order does not show up in my account.
Could you send me a copy of the receipt for my records?
We are unable to ship to PO boxes; could you provide a street address?
Your package was returned to us because the address could not be found.
The courier attempted delivery but nobody was available to receive the package.
You can arrange a new delivery date on the courier's website using your tracking number.
International orders may be subject to customs fees, which are the responsibility of the recipient.
I have forwarded your request to our warehouse team and they will reply by email within 24 hours.
Please make sure the item is unused, with the original tags and packaging.
Once we receive the returned item, we will inspect it and process your refund within 5 business days.
For hygiene reasons, earrings and underwear cannot be returned unless faulty.
Could you please try clearing your browser cache and placing the order again?
The promotion ended yesterday, so the discount can no longer be applied.
Your refund has been processed and should appear on your statement within 5-7 business days.
I have checked with the carrier and your parcel is currently in transit.
The item is out of stock at the moment. Would you like us to notify you when it is available?
I am sorry, but we cannot change the order once it has been dispatched.
We have sent a prepaid return label to your email address.
You will receive an email confirmation with the tracking details shortly.
I have applied a 10% discount to your next order as an apology.
Thanks for your message. Our team will get back to you as soon as possible.
Could you please provide a photo of the damaged item and the packaging?
Could you please confirm your full name and the email address used for the order?
I completely understand, and I apologize for the trouble this has caused.
I am sorry for the delay in delivery.
We apologize for any inconvenience caused.
Let me look into this for you.
Please bear with me while I check the details.
Is there anything else I can help you with today?
Thank you for contacting customer service. Have a nice day!
Hi, I ordered a pair of shoes last week and they still have not arrived.
I received the wrong item in my package.
The item I received is damaged.
I want to return this item and get a refund.
How do I return an item?
Can I exchange it for a different size?
When will my order be shipped?
Where is my order? The tracking number is not working.
My package has not arrived yet.
I have not received my refund yet.
Can I change my shipping address?
Can I cancel my order?
I need help with my order.
Is this item in stock?
How much is the shipping fee?
How long does delivery take?
Do you have free shipping?
It has been more than a week.
Please check my order status.
I paid but the order shows unpaid.
What is the order number?
yes please, no thanks, not yet, right now, as soon as possible, any update?, hello?, are you there?, \
thank you very much, thanks a lot, thanks for your help, you're welcome, no problem, got it, I see, \
sounds good, that's fine, never mind, of course, sure, okay, OK, ok, yes, no, sorry, please, thanks, \
the order, my order, your order, order number, tracking number, tracking information, shipping address, \
delivery, delivered, shipped, shipping, dispatched, arrived, received, package, parcel, courier, \
refund, refunded, return, returned, exchange, replacement, cancel, cancelled, payment, charged, \
price, discount, coupon, size, color, colour, quantity, stock, available, item, product, account, \
email address, phone number, address, business days, 24 hours, within, yesterday, today, 
Hi, Hello, Hi there, Good morning, Good afternoon, Good evening, How can I help you? \
I would like to, I want to, Could you please, Can you, Can I, Do you, Is it, It is, I have, I am, \
I will, I can, we will, we have, we are, you can, you will, let me, check, please wait, \
the, and, for, with, this, that, you, your, my, me, is, are, was, has, have, not, but, it, of, to, in, on, at, a, an \
Thank you!
Thanks!
请问这个有赠品吗，我看别人买有送
买了两件能不能一起发
下单的时候忘记备注了
能不能帮我备注一下，送货前打电话
快递不要放门口，放快递柜就行
能不能指定日期送货
我明天不在家，能不能晚点送
快递员说找不到地址
收件人电话写错了
帮我看一下我的订单是不是已经发出了
我昨天买的那个订单
你们的售后电话是多少
你们几点下班
周末有人上班吗
我想问下活动什么时候开始
价格怎么比昨天贵了
买贵了，能退差价吗
保价吗，降价了能补吗
有没有更大的尺码
这个是什么材质的
适合多大的孩子用
能不能机洗
需要自己安装吗，有安装视频吗
有没有安装师傅上门
电池不耐用，充一晚上才用半天
开不了机，一直黑屏
声音很小，是不是坏了
漏发了配件
收到的是旧的，不是新的
包装盒压坏了
里面的东西少了
东西收到了，但是用不了
这个怎么用，有没有教程
能不能先退款再退货
退回去的运费能报销吗
我已经确认收货了，还能退吗
超过七天了还能退吗
钱什么时候退给我
为什么退款只退了一部分
订单显示交易关闭是怎么回事
为什么我付款了还显示待付款
我的账号登录不了
手机号换了，怎么改绑定
亲，您说的情况我们已经了解了
亲，这个问题需要您提供一下照片或者视频哦
亲，麻烦您把问题描述一下，我们好给您处理
亲，您的退款申请已经同意了
亲，您的退货我们已经收到了，正在为您办理退款
亲，差价已经给您退回了
亲，您可以在我的订单里点击申请售后
亲，售后会在1-2个工作日内处理
亲，这个商品不支持七天无理由退货哦
亲，定制商品不支持退换哦
亲，您的快递在中转站，预计后天可以送达
亲，我们这边已经帮您备注了，会尽量安排
亲，已经帮您修改备注了
亲，赠品数量有限，送完为止哦
亲，活动期间下单的顾客比较多，发货可能会延迟一两天
亲，您的订单已经加急处理了
亲，这款可以机洗，建议放洗衣袋
亲，电池问题属于质量问题，可以给您换新的
亲，麻烦您先试一下重启，如果还是不行我们给您换货
亲，配件漏发了，马上给您补寄
亲，请问还有其他需要帮助的吗？
亲，您的支持是我们最大的动力
亲，欢迎下次光临
亲，祝您生活愉快
好的，收到
好的，明白了
行，那就这样吧
麻烦你了
辛苦了
不好意思
请问你们有实体店吗，想去试一下
这款有没有现货，什么时候补货
我想买来送人，能不能帮忙包装一下，不要放发票
请问这款手机支持5G吗，内存是多大的
充电器是原装的吗，有没有保修卡
说明书上写的和实际不一样
衣服洗了一次就缩水了，还掉色
鞋子开胶了，穿了不到一个月
面料是纯棉的吗，会不会起球
裤子太长了，可以帮忙改短吗
尺码表在哪里看，平时穿M码
我的身高170，体重60公斤，穿什么码合适
大小合适吗，偏大还是偏小
颜色和图片有色差
东西和描述的不符
商品有瑕疵，能退吗
快递员没打电话就直接放驿站了
快递被别人签收了
快递一直显示在派送中
物流停在一个地方好几天不动
为什么显示已揽收但是一直没有物流信息
能不能发顺丰，我可以补差价
偏远地区包邮吗，新疆能发吗
我在国外，可以寄到海外吗
下错单了，想重新拍
拍错颜色了，能帮我改一下吗
能帮我改成别的颜色吗
付款的时候提示支付失败
用了优惠券为什么价格没变
满减活动怎么参加
领的优惠券用不了
退款金额不对，少退了
退款被驳回了是什么原因
申请售后一直没有人处理
质量问题，要求退货退款，运费谁承担
我已经把退货寄出了，快递单号填好了
退货地址是哪里，寄回哪里
你们给我个说法
我要给差评了
什么破质量，太失望了
发票可以开公司抬头吗，需要税号
会员积分怎么兑换
亲，这款是我们家的爆款，质量有保障的
亲，我们的商品都是正品，支持专柜验货的
亲，这款是按标准尺码做的，您按平时的尺码拍就可以
亲，根据您提供的身高体重，建议您选择L码
亲，实物和图片可能会有轻微色差，因为拍摄光线和显示器的原因
亲，这款衣服建议手洗，不要暴晒
亲，如果有质量问题，我们承担来回运费
亲，麻烦您在订单页面申请退货退款，填写退货快递单号
亲，退货地址已经发给您了，请在七天内寄回
亲，仓库收到退货后，会在48小时内为您处理退款
亲，退款会原路退回到您的支付账户，请注意查收
亲，已经为您申请了补发，新的快递单号会在发货后同步给您
亲，已经帮您登记了，专员会在24小时内联系您
亲，这边已经帮您反馈给快递公司了，他们会尽快处理
亲，快递已经在派送中了，请保持电话畅通
亲，由于快递量较大，物流可能会有延迟，请您耐心等待
亲，您的订单已经打包好了，今天就会发出
亲，现在下单的话，预计明天发货
亲，我们一般是48小时内发货的
亲，默认发圆通或者中通快递，顺丰需要补运费
亲，发票会在确认收货后开具，电子发票会发到您的邮箱
亲，满199元减20元，活动页面可以领取优惠券
亲，优惠券有使用门槛，请看一下使用条件
亲，非常抱歉，这款已经售罄了
亲，这边看到您的订单还没有付款哦
亲，拍下后请在30分钟内完成付款，超时订单会自动取消
亲，订单还没发货的话，可以直接申请退款
亲，订单已经发货了，暂时无法修改地址，您可以联系快递员改派
亲，修改地址需要在发货之前哦
亲，您的问题我们已经反馈给相关部门了
亲，如果还有其他问题，随时联系我们哦
亲，感谢您对本店的支持，祝您购物愉快
亲，收到货后如果满意的话，麻烦给个五星好评哦
亲，有任何问题可以随时联系客服
非常抱歉给您带来了不好的购物体验
非常抱歉让您久等了
给您带来不便，深表歉意
我们会尽快为您处理
请您耐心等待一下
这边马上为您查询
稍等一下，我帮您看看
您好，请问有什么可以帮您
您好，欢迎光临，很高兴为您服务
亲，在的，请问有什么可以帮您？
亲，您好，请问有什么可以帮到您？
亲，麻烦提供一下订单号，这边帮您查询
亲，请提供一下您的订单号哦
我的订单什么时候发货
什么时候能到
怎么还没到
快递到哪里了
为什么还不发货
我要退货
我要换货
我要退款
可以退换吗
怎么申请退款
能不能便宜一点
有没有优惠
包邮吗
有货吗
发什么快递
多久能到
订单号是
快递单号是
收货地址
手机号
好的，谢谢
好的，麻烦了
谢谢亲
嗯嗯，好的
知道了
没问题
不客气
再见
七天无理由退换货 运费险 质量问题 售后 退货 退款 换货 补发 发货 物流 快递 签收 派送 揽收 \
仓库 库存 现货 预售 尺码 颜色 型号 规格 数量 价格 优惠券 活动 付款 支付 发票 地址 \
电话 手机 商品 宝贝 衣服 鞋子 包裹 订单 客服 工作日 小时 天 今天 明天 昨天 \
请问 麻烦 帮我 帮您 为您 给您 一下 已经 还没 没有 可以 不能 什么 怎么 为什么 \
我们 你们 这个 那个 这边 一个 还是 但是 如果 的话 吗 呢 吧 啊 哦 哈 了 的 \
您好 你好 亲 在吗 在的 谢谢 好的 亲，您好 请稍等 订单 亲，`;
